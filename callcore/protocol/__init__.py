"""Wire formats of Twilio Media Streams and OpenAI Realtime, as pure functions."""
