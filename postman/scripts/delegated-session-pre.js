// A delegated session needs an organization API key with sessions:write.
// The organizations folder makes one; until it has run, make an organization
// and a key here.
(function () {
    if (pm.variables.get('org_api_key')) {
        return;
    }
    var bearer = { bearer: pm.variables.get('access_token') };
    latchSend('POST', '/organizations', bearer, { name: 'Delegated sessions ' + latchStamp() }, function (org) {
        if (!org) {
            return;
        }
        pm.collectionVariables.set('org_id', org.id);
        var key = { label: 'delegated sessions', scopes: ['sessions:write', 'sessions:read'] };
        latchSend('POST', '/organizations/' + org.id + '/api-keys', bearer, key, function (created) {
            if (created) {
                pm.collectionVariables.set('org_key_id', created.id);
                pm.collectionVariables.set('org_api_key', created.key);
            }
        });
    });
})();
