// Percent-encode the query values: an address such as latch+1@example.com
// would otherwise arrive with a space where its "+" was.
pm.request.url.query.each(function (param) {
    param.value = encodeURIComponent(pm.variables.replaceIn(param.value));
});
