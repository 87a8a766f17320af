// A member must be an existing account: open a second one to add.
(function () {
    var email = 'latch+member-' + latchStamp() + '@example.com';
    latchSend('POST', '/auth/signup', null, { email: email, password: pm.variables.get('password') }, function (body) {
        if (body) {
            pm.collectionVariables.set('member_email', email);
        }
    });
})();
