-- One use, not two (issue 18): a transcript's use and Claude Code's OpenTelemetry event for the
-- same occurrence are matched on session, prompt and tool use id or skill name. Transcript lines
-- carry ``promptId`` (user lines; an assistant's tool use takes the prompt it answers) and each
-- tool use its ``id``; the processor (version 2) fills both, older rows keep NULL until reprocessed.
ALTER TABLE usage_events ADD COLUMN prompt_id VARCHAR;
ALTER TABLE usage_events ADD COLUMN tool_use_id VARCHAR;
