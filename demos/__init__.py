"""edgebnn demos: `edgebnn demo` (terminal), `edgebnn serve` (web page on
the device), `edgebnn camera` (live camera loop). Only the public runtime
API is used (edgebnn.load, Model, edgebnn.datasets), so these modules show
exactly what an application needs. Relative imports only: the package is
installed as edgebnn_demos."""
