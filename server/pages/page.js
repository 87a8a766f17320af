(function () {
  'use strict';
  // The token travels in the URL fragment, which browsers never send to a
  // server. Read it, then drop it from the address bar and the history.
  var params = new URLSearchParams(location.hash.slice(1));
  var token = params.get('token') || '';
  if (location.hash) {
    history.replaceState(null, '', location.pathname + location.search);
  }
  var kind = document.body.getAttribute('data-page');
  var form = document.getElementById('form');
  var status = document.getElementById('status');
  var button = form ? form.querySelector('button') : null;

  function say(text, cls) {
    status.textContent = text;
    status.className = cls || '';
  }

  if (kind === 'invitation') {
    var out = document.getElementById('token');
    out.textContent = token ? JSON.stringify({ token: token }) : '(no token in this link)';
    return;
  }
  if (!token) {
    say('This link has no token. Open the link from the mail again, or ask for a new one.', 'error');
    if (button) button.disabled = true;
    return;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var body = { token: token };
    var path = 'auth/verify';
    if (kind === 'reset') {
      var pw = document.getElementById('password').value;
      var again = document.getElementById('confirm').value;
      if (pw !== again) {
        say('The two passwords differ.', 'error');
        document.getElementById('confirm').focus();
        return;
      }
      body.password = pw;
      path = 'auth/password/reset';
    }
    button.disabled = true;
    say('Sending…');
    fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
    }).then(function (res) {
      if (res.status === 204) {
        say(kind === 'reset'
          ? 'Your password is changed. Every session was signed out: log in with the new password.'
          : 'Your email address is verified. You can close this page.', 'ok');
        form.hidden = true;
        return;
      }
      return res.json().then(function (e) {
        var msg = e && e.message ? e.message : 'the request failed';
        if (e && e.error === 'invalid_token') msg = 'This link is invalid, used or expired. Ask for a new one.';
        say('Not done: ' + msg, 'error');
        button.disabled = e && e.error === 'invalid_token';
      });
    }).catch(function () {
      say('Latch could not be reached. Try again.', 'error');
      button.disabled = false;
    });
  });
})();
