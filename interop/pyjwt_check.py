"""interop/pyjwt_check.py: PyJWT (Debian's python3-jwt, unmodified) verifies a
Latch access token the way docs/any-language.md tells a Python resource
server to: the JWKS URI from discovery, the issuer from discovery, the
audience the deployment configured. A tampered token and a token for another
audience must be refused. Usage: pyjwt_check.py BASE_URL AUDIENCE
"""
import json
import sys
import urllib.request

import jwt


def call(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"null")


def main():
    base, audience = sys.argv[1], sys.argv[2]
    meta = call("GET", base + "/.well-known/openid-configuration")
    cred = {"email": "pyjwt@example.com", "password": "correct horse battery staple"}
    call("POST", base + "/auth/signup", cred)
    tokens = call("POST", base + "/auth/login", cred)
    access = tokens["access_token"]

    jwks = jwt.PyJWKClient(meta["jwks_uri"])
    key = jwks.get_signing_key_from_jwt(access)
    algs = ["ES256", "EdDSA", "RS256"]  # Latch's algorithms; never "none" or HS*
    claims = jwt.decode(access, key.key, algorithms=algs, audience=audience, issuer=meta["issuer"])
    me = call("GET", base + "/auth/me", token=access)
    assert claims["sub"] == me["id"], (claims, me)
    assert claims["sid"] == tokens["session_id"], claims
    print("pyjwt: verified the access token through %s (alg %s, kid %s)" % (meta["jwks_uri"], key._jwk_data.get("alg"), key.key_id))

    head, payload, sig = access.split(".")
    tampered = head + "." + payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig
    for bad, why in [(tampered, "a tampered payload"), (access, "another audience")]:
        try:
            jwt.decode(bad, key.key, algorithms=algs, audience=audience if bad is tampered else "https://other.example", issuer=meta["issuer"])
        except jwt.InvalidTokenError as e:
            print("pyjwt: refused %s (%s)" % (why, type(e).__name__))
            continue
        sys.exit("pyjwt accepted %s" % why)


if __name__ == "__main__":
    main()
