// The password changed: later logins use the new one.
(function () {
    if (pm.response.code !== 204) {
        return;
    }
    latchKeep('password', pm.variables.get('new_password'));
    pm.collectionVariables.set('new_password', '');
})();
