-- Sends outside WhatsApp's 24-hour window (SPEC 4.4): a template can name its approved
-- provider template (JSON: {"meta": {name, language, params}, "twilio": {content_sid,
-- variables}}, see dropcheck_core::templates::ProviderTemplates), and every queued message
-- keeps the variables it was rendered from, so the sender can fill that template's
-- parameters. A message may carry a media URL; `sent_as` records how it went out.
alter table message_template add column provider_template text;
alter table message_template add column description text;
alter table message add column template_vars text;
alter table message add column media_url text;
alter table message add column sent_as text;
