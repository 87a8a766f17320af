// Keep the API key this response created: its secret is shown only once.
(function () {
    if (pm.response.code !== 201) {
        return;
    }
    var body = {};
    try { body = pm.response.json(); } catch (e) { return; }
    if (body.key !== undefined) {
        latchKeep('api_key', body.key);
    }
    if (body.id !== undefined) {
        latchKeep('key_id', body.id);
    }
})();
