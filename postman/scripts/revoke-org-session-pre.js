// Revoke a delegated session of its own: open one for a throwaway external
// user with {{org_api_key}} and revoke that.
(function () {
    var apiKey = { apiKey: pm.variables.get('org_api_key') };
    latchSend('POST', '/sessions', apiKey, { external_id: 'throwaway-' + latchStamp() }, function (body) {
        if (body) {
            pm.collectionVariables.set('revoke_org_session_id', body.session_id);
        }
    });
})();
