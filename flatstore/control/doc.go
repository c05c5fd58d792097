// Package control is flatstore's control endpoint: the OpenSIPS MI JSON-RPC
// interface (POST /mi and everything under /mi/, as OpenSIPS mi_http), plain
// HTTP beside it (POST /rotate, GET /status, GET /metrics, GET /healthz, and
// GET /challenge, through which the endpoint proves it holds the token), the
// lifecycle of the listeners, and Client, the one client of all of it
// (flatstore-ctl and the tests use it).
//
// A Registry holds the servers of one process, one per address, shared by
// every plugin instance that names that address: Acquire attaches an
// instance, Release detaches it and the last Release closes the listener, so
// a hot reload (Init, Exit, Init in one process) can bind the same address
// again at once. The plugin creates one Registry per process; tests create
// their own and run in parallel.
//
// The package talks to the core only through Backend (and reads
// control_listen as a flatstore.Listen, parsed once) and imports no cgo.
//
// # OpenSIPS MI
//
// The OpenSIPS MI interface as mi_http serves it: JSON-RPC 2.0 over POST.
//
// What OpenSIPS does (modules/mi_http, mi/mi.c, modules/httpd), and so what
// this does:
//   - every reply it builds goes out with HTTP 200 and Content-Type
//     application/json, errors included;
//   - a request without an "id" member is a notification: the command runs
//     and the answer is HTTP 202 with no body, unless the request could not
//     be parsed or was invalid (then the error goes out with "id":null);
//   - an empty body is HTTP 400;
//   - members of the request object are looked up ignoring ASCII case, the
//     first one wins (cJSON_GetObjectItem); parameter names are compared
//     exactly;
//   - "params": {} or [] counts as no parameters;
//   - a string id is printed again from its value: the UTF-8 of a non-ASCII
//     character goes out as raw bytes ("\u00e9" is echoed as "é");
//   - a path_to_file that is a number is taken as its text (so it is "File
//     not found", as no managed path is a number);
//   - a NUL in the body, raw or as the escape \u0000, is a parse error (the
//     body is a C string to OpenSIPS);
//   - MI is served on /mi and on every path under /mi/.
//
// Where this differs, on purpose (docs/control-endpoint.md says why):
//   - a numeric id is echoed as the client wrote it (1.50 stays 1.50);
//     OpenSIPS prints its integer part;
//   - other escapes in a string id are echoed as sent;
//   - an id that is not a string, number or null gets -32600 Invalid Request
//     with "id":null; OpenSIPS fails to print a reply (HTTP 500, no body);
//   - bytes after the JSON value are a parse error; cJSON ignores them;
//   - a path_to_file that is null, a bool, an array or an object is -32602
//     "Invalid params" with data "Bad type for parameter 'path_to_file'";
//   - any request Content-Type is accepted; OpenSIPS drops the connection
//     unless it is application/json or text/xml;
//   - the empty-body 400 carries a -32700 Parse error reply, where OpenSIPS
//     sends none;
//   - GET and other methods on /mi answer 405 with an Allow header (mi_http:
//     405 for GET, 406 for the others, no body), and an unknown path 404
//     (OpenSIPS's httpd: 400 "Unable to parse URL!").
package control
