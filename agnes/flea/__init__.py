"""The flea market: skills, agents, commands and plugins that analysts publish themselves.

Nothing here starts a job or renders a page (``agnes.jobs.flea`` and ``agnes.views`` do):

* :mod:`~agnes.flea.checks` — what an upload must be (ZIP safety, layout, frontmatter), turned
  into a :class:`~agnes.flea.checks.Bundle` in the plugin layout it will be stored in;
* :mod:`~agnes.flea.scan` — the static scan of every file for secrets and dangerous commands.
"""
