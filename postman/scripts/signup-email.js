// Make signup re-runnable: an address at example.com (the default) is
// replaced by a fresh latch+<stamp>@example.com, so running the collection
// again does not meet email_taken. Any other address is kept as you set it.
(function () {
    var email = pm.variables.get('email') || '';
    if (email === '' || /@example\.com$/i.test(email)) {
        latchKeep('email', 'latch+' + latchStamp() + '@example.com');
    }
})();
