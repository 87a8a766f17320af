// An invitation goes to an address; open a second account to invite, so
// that the member requests that follow have a user who is not (yet) a
// member: they answer 404, as the contract says, until the invitation is
// accepted from its mail.
(function () {
    var email = 'latch+member-' + latchStamp() + '@example.com';
    latchSend('POST', '/auth/signup', null, { email: email, password: pm.variables.get('password') }, function (body) {
        if (body) {
            pm.collectionVariables.set('member_email', email);
            pm.collectionVariables.set('member_id', body.user.id);
        }
    });
})();
