// The session is over: forget its tokens, so that nothing tries to refresh it.
(function () {
    if (pm.response.code !== 204) {
        return;
    }
    ['access_token', 'refresh_token', 'expires_at', 'session_id'].forEach(function (name) {
        latchKeep(name, '');
    });
})();
