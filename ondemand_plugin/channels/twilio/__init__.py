"""The Twilio channels (``twilio_sms``, ``twilio_voice``) and their routes (``twilio/status``,
``twilio/inbound``), built only on the public contract: ``hookspecs`` and the plugin's public
modules, as a third party's channel would be."""
