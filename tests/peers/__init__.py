"""Real peers for the channel tests, on loopback: an SMTP server (aiosmtpd), a gateway speaking the
part of the Twilio API the channels use, and a webhook receiver. Each records what it received and
can be told to fail the way real providers do."""
