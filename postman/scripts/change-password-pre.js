// Choose the new password before the request, so that the test script can
// remember it. A new_password you set yourself is used as it is.
(function () {
    var next = pm.variables.get('new_password');
    if (!next || next === pm.variables.get('password')) {
        pm.collectionVariables.set('new_password', 'latch-' + latchStamp() + '-' + latchStamp());
    }
})();
