"""What is inside one Claude Code plugin: skills, agents, commands, hooks and MCP servers.

Read from a plugin's files on disk (a curated marketplace checkout or a flea-market upload):

* :mod:`~agnes.plugin.contents` — the plugin's components and one component's document;
* :mod:`~agnes.plugin.frontmatter` — YAML frontmatter of SKILL.md, agent and command files;
* :mod:`~agnes.plugin.integrations` — hooks and MCP servers;
* :mod:`~agnes.plugin.paths` — safe joins and size-capped reads of a plugin's files.
"""
