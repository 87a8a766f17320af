// Revoke a key of its own: create a throwaway personal key and revoke that
// one, so {{api_key}} keeps working.
(function () {
    var bearer = { bearer: pm.variables.get('access_token') };
    var key = { label: 'throwaway ' + latchStamp(), scopes: ['keys:read'] };
    latchSend('POST', '/api-keys', bearer, key, function (body) {
        if (body) {
            pm.collectionVariables.set('revoke_key_id', body.id);
        }
    });
})();
