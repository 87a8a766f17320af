// Variation: send a body that is not valid JSON (cut short).
pm.request.body.update('{"truncated": ');
