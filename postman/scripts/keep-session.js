// Keep the session this response opened or rotated: access and refresh
// token, their expiry and the session id (see lib.js for the environment).
(function () {
    if (pm.response.code < 200 || pm.response.code > 299) {
        return;
    }
    var body = {};
    try { body = pm.response.json(); } catch (e) { return; }
    ['access_token', 'refresh_token', 'expires_at', 'session_id'].forEach(function (name) {
        if (body[name] !== undefined) {
            latchKeep(name, body[name]);
        }
    });
})();
