// Collection pre-request script: keep the access token fresh, so the
// collection still works when you come back to it after the token expired.
// When a refresh token is known and the access token is missing or expires
// within a minute, it is rotated through POST /auth/refresh first.
(function () {
    var path = '/' + pm.request.url.getPath(true).replace(/^\/+/, '');
    // These open or rotate a session themselves.
    if (['/auth/signup', '/auth/login', '/auth/refresh'].indexOf(path) !== -1) {
        return;
    }
    var refreshToken = pm.variables.get('refresh_token');
    if (!refreshToken) {
        return;
    }
    var accessToken = pm.variables.get('access_token');
    var expiresAt = Date.parse(pm.variables.get('expires_at') || '');
    var expiring = !isNaN(expiresAt) && expiresAt - Date.now() < 60 * 1000;
    if (accessToken && !expiring) {
        return;
    }
    latchSend('POST', '/auth/refresh', null, { refresh_token: refreshToken }, function (body, code) {
        if (!body) {
            if (code === 401) {
                console.warn('latch: the refresh token was refused; run "Log in with email and password" again.');
            }
            return;
        }
        ['access_token', 'refresh_token', 'expires_at', 'session_id'].forEach(function (name) {
            if (body[name] !== undefined) {
                latchKeep(name, body[name]);
            }
        });
    });
})();
