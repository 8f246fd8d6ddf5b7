"""Local stand-ins for OpenAI Realtime and Twilio Media Streams that speak the real protocols."""
