// Revoke a key of its own: create a throwaway organization key and revoke
// that one, so {{org_api_key}} keeps working.
(function () {
    var bearer = { bearer: pm.variables.get('access_token') };
    var key = { label: 'throwaway ' + latchStamp(), scopes: ['sessions:read'] };
    latchSend('POST', '/organizations/' + pm.variables.get('org_id') + '/api-keys', bearer, key, function (body) {
        if (body) {
            pm.collectionVariables.set('revoke_org_key_id', body.id);
        }
    });
})();
