package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/go-chi/chi/v5"
)

const routeSpec = `
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things/{id}:
    get:
      operationId: getThing
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid}}
      responses: {"200": {description: ok}}
`

func TestRouteTablePairsEveryOperationWithOneHandler(t *testing.T) {
	doc, err := LoadSpec([]byte(routeSpec))
	if err != nil {
		t.Fatal(err)
	}
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(chi.URLParam(r, "id")))
	}

	missing := chi.NewRouter()
	if _, err := newRouteTable(doc, missing); err == nil || !strings.Contains(err.Error(), "without a handler") {
		t.Fatalf("an operation without a handler: %v", err)
	}
	extra := chi.NewRouter()
	extra.Get("/things/{id}", ok)
	extra.Get("/other", ok)
	if _, err := newRouteTable(doc, extra); err == nil || !strings.Contains(err.Error(), "not in the spec") {
		t.Fatalf("a handler without an operation: %v", err)
	}

	mux := chi.NewRouter()
	mux.Get("/things/{id}", ok)
	mux.NotFound(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMethodNotAllowed) })
	tbl, err := newRouteTable(doc, mux)
	if err != nil {
		t.Fatal(err)
	}
	var failed error
	h := tbl.serve(&openapi3filter.Options{SchemaValidationOptions: []openapi3.SchemaValidationOption{FormatValidators()}}, func(_ context.Context, err error, w http.ResponseWriter, _ *http.Request) {
		failed = err
		w.WriteHeader(http.StatusBadRequest)
	})
	cases := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/things/6f1c2a4e-8f0b-4c39-9d4e-2b7a1c0d9e11", 200, "6f1c2a4e-8f0b-4c39-9d4e-2b7a1c0d9e11"},
		// An escaped path parameter is validated, and handed over, as chi hands it.
		{"GET", "/things/6f1c2a4e-8f0b-4c39-9d4e-2b7a1c0d9e1%31", 200, "6f1c2a4e-8f0b-4c39-9d4e-2b7a1c0d9e1%31"},
		{"GET", "/things/not-a-uuid", 400, ""},
		{"POST", "/things/6f1c2a4e-8f0b-4c39-9d4e-2b7a1c0d9e11", 405, ""},
		{"GET", "/nothing", 404, ""},
		{"GET", "/things/6f1c2a4e-8f0b-4c39-9d4e-2b7a1c0d9e11/", 404, ""},
	}
	for _, c := range cases {
		failed = nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status {
			t.Errorf("%s %s: %d, want %d (validation: %v)", c.method, c.path, rec.Code, c.status, failed)
		}
		if c.body != "" && rec.Body.String() != c.body {
			t.Errorf("%s %s: handler saw %q, want %q", c.method, c.path, rec.Body.String(), c.body)
		}
	}
}
