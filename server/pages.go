package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"net/http"

	"github.com/latchauth/latch/api"
)

// The pages that mailed links open. They are self-contained: the style and
// the script are inline (allowed by their hashes in the Content-Security-
// Policy), nothing is loaded from another origin, and the script posts to
// Latch's API on the page's own origin with relative URLs.

//go:embed pages/style.css
var pageCSS string

//go:embed pages/page.js
var pageJS string

// referencePage is the API reference served at /docs: the self-contained
// page that `make generate-docs` renders from openapi.yaml with Redocly. It
// is generated; `make check-generated` fails when it differs from the spec.
//
//go:embed pages/reference.html
var referencePage []byte

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · Latch</title>
<link rel="icon" href="favicon.ico">
<style>{{.CSS}}</style>
</head>
<body data-page="{{.Kind}}">
<main>
<h1>{{.Title}}</h1>
{{.Body}}
<p id="status" role="status" aria-live="polite"></p>
</main>
<script>{{.JS}}</script>
</body>
</html>
`))

const resetBody = `<p>Choose a new password. Every session of your account will be signed out.</p>
<form id="form" novalidate>
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="8" maxlength="1024" required aria-describedby="password-hint">
<p id="password-hint" class="hint">At least 8 characters. Very common passwords are refused.</p>
<label for="confirm">Repeat the new password</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" minlength="8" maxlength="1024" required>
<p></p>
<button type="submit">Set the new password</button>
</form>`

const verifyBody = `<p>Confirm that this email address is yours.</p>
<form id="form">
<button type="submit">Verify my email address</button>
</form>`

const invitationBody = `<p>You were invited to join an organization. Accepting needs you to be signed in with the invited address, which this page cannot do for you.</p>
<p>Sign in to the application that uses Latch and accept there, or send this body to <code>POST /invitations/accept</code> with your session's access token:</p>
<pre id="token" aria-label="Request body"></pre>
<pre>curl -X POST /invitations/accept -H "Authorization: Bearer $ACCESS_TOKEN" -H 'Content-Type: application/json' -d @body.json</pre>`

// page is one rendered page.
type page struct {
	html []byte
}

var (
	resetPage      = renderPage("reset", "Reset your password", resetBody)
	verifyPage     = renderPage("verify", "Verify your email address", verifyBody)
	invitationPage = renderPage("invitation", "Accept an invitation", invitationBody)
	// pageCSP allows exactly the inline style and script of the pages.
	pageCSP = "default-src 'none'; script-src '" + cspHash(pageJS) + "'; style-src '" + cspHash(pageCSS) +
		"'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

func renderPage(kind, title, body string) page {
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, map[string]any{
		"Kind": kind, "Title": title, "Body": template.HTML(body),
		"CSS": template.CSS(pageCSS), "JS": template.JS(pageJS),
	})
	if err != nil {
		panic(err)
	}
	return page{html: b.Bytes()}
}

func cspHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

// pageHeaders sets the security headers of the pages: a strict
// Content-Security-Policy, no referrer (the URL held the token until the
// script removed it) and no framing.
func pageHeaders(h http.Header, path string) {
	switch path {
	case "/reset-password", "/verify-email", "/accept-invitation":
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
	}
}

// GetDocs serves the API reference page.
func (s *Server) GetDocs(ctx context.Context, _ api.GetDocsRequestObject) (api.GetDocsResponseObject, error) {
	return api.GetDocs200TexthtmlResponse{Body: bytes.NewReader(referencePage), ContentLength: int64(len(referencePage))}, nil
}

// GetResetPasswordPage serves the password-reset page.
func (s *Server) GetResetPasswordPage(ctx context.Context, _ api.GetResetPasswordPageRequestObject) (api.GetResetPasswordPageResponseObject, error) {
	return api.GetResetPasswordPage200TexthtmlResponse{Body: bytes.NewReader(resetPage.html), ContentLength: int64(len(resetPage.html))}, nil
}

// GetVerifyEmailPage serves the email-verification page.
func (s *Server) GetVerifyEmailPage(ctx context.Context, _ api.GetVerifyEmailPageRequestObject) (api.GetVerifyEmailPageResponseObject, error) {
	return api.GetVerifyEmailPage200TexthtmlResponse{Body: bytes.NewReader(verifyPage.html), ContentLength: int64(len(verifyPage.html))}, nil
}

// GetAcceptInvitationPage serves the page that invitation links open.
func (s *Server) GetAcceptInvitationPage(ctx context.Context, _ api.GetAcceptInvitationPageRequestObject) (api.GetAcceptInvitationPageResponseObject, error) {
	return api.GetAcceptInvitationPage200TexthtmlResponse{Body: bytes.NewReader(invitationPage.html), ContentLength: int64(len(invitationPage.html))}, nil
}

// favicon is a 32x32 icon (a PNG inside an ICO container, as every browser
// reads it), drawn here so that no binary sits in the repository.
var favicon = drawFavicon()

func drawFavicon() []byte {
	const n = 32
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	bg := color.NRGBA{0x0b, 0x5c, 0xad, 0xff}
	fg := color.NRGBA{0xff, 0xff, 0xff, 0xff}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			// A rounded square: the corners stay transparent.
			dx, dy := min(x, n-1-x), min(y, n-1-y)
			if dx+dy < 3 {
				continue
			}
			c := bg
			// An "L": a stem and a foot.
			if (x >= 10 && x <= 14 && y >= 7 && y <= 24) || (x >= 10 && x <= 23 && y >= 20 && y <= 24) {
				c = fg
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var p bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		panic(err)
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	_ = binary.Write(&b, le, [3]uint16{0, 1, 1}) // reserved, type icon, one image
	b.Write([]byte{n, n, 0, 0})                  // width, height, no palette, reserved
	_ = binary.Write(&b, le, [2]uint16{1, 32})   // planes, bits per pixel
	_ = binary.Write(&b, le, [2]uint32{uint32(p.Len()), 6 + 16})
	b.Write(p.Bytes())
	return b.Bytes()
}

// GetFavicon serves the icon.
func (s *Server) GetFavicon(ctx context.Context, _ api.GetFaviconRequestObject) (api.GetFaviconResponseObject, error) {
	return api.GetFavicon200ImagexIconResponse{Body: bytes.NewReader(favicon), ContentLength: int64(len(favicon)),
		Headers: api.GetFavicon200ResponseHeaders{CacheControl: "public, max-age=86400"}}, nil
}
