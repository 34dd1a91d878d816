"""Page data: one function per page that builds what its HTML page, its HTMX fragments and its
JSON twin show, so the browser, the CLI and scripts cannot disagree (datasette's rule).

Views parse the request, call one of these, and render or ``jsonify`` the result; they add only
form state (submitted values, per-field errors). Page data functions call the domain services
(:mod:`agnes.people`, :mod:`agnes.marketplace`, :mod:`agnes.data`) and never write.
"""
