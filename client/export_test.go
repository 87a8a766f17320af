package client

// PublicPaths exposes the operations sent without credentials to the tests.
var PublicPaths = publicPaths
