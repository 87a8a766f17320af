// Revoke a session of its own: log in once more and revoke that one, so the
// session the collection works with stays alive.
(function () {
    var credentials = { email: pm.variables.get('email'), password: pm.variables.get('password') };
    latchSend('POST', '/auth/login', null, credentials, function (body) {
        if (body) {
            pm.collectionVariables.set('revoke_session_id', body.session_id);
        }
    });
})();
