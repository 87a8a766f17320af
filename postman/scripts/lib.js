// Latch helpers (postman/scripts/lib.js). The scripts that need them include
// this file; nothing here ever prints a token, an API key or a password.

// latchKeep stores a value as a collection variable and, when the selected
// environment declares the same name, there too: an environment variable
// shadows a collection variable, even an empty one.
function latchKeep(name, value) {
    pm.collectionVariables.set(name, value);
    if (pm.environment.has(name)) {
        pm.environment.set(name, value);
    }
}

// latchStamp returns a short value that differs on every call, for addresses
// and labels that must not collide with an earlier run.
function latchStamp() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
}

// latchSend calls the API from a script. auth is null, {bearer: token} or
// {apiKey: key}. done(body, code) gets the parsed body of a 2xx answer, or
// null; a failure is reported by method, path, status and error code only.
function latchSend(method, path, auth, body, done) {
    var header = [{ key: 'Accept', value: 'application/json' }];
    if (body !== undefined && body !== null) {
        header.push({ key: 'Content-Type', value: 'application/json' });
    }
    if (auth && auth.bearer) {
        header.push({ key: 'Authorization', value: 'Bearer ' + auth.bearer });
    }
    if (auth && auth.apiKey) {
        header.push({ key: 'X-API-Key', value: auth.apiKey });
    }
    var request = {
        url: pm.variables.replaceIn('{{base_url}}').replace(/\/+$/, '') + path,
        method: method,
        header: header
    };
    if (body !== undefined && body !== null) {
        request.body = { mode: 'raw', raw: JSON.stringify(body) };
    }
    pm.sendRequest(request, function (err, res) {
        if (err) {
            console.warn('latch: ' + method + ' ' + path + ' failed: ' + (err.code || err.message));
            done(null, 0);
            return;
        }
        var json = null;
        try { json = res.json(); } catch (e) { json = null; }
        if (res.code < 200 || res.code > 299) {
            console.warn('latch: ' + method + ' ' + path + ' answered ' + res.code +
                (json && json.error ? ' (' + json.error + ')' : ''));
            done(null, res.code);
            return;
        }
        done(json, res.code);
    });
}
