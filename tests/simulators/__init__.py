"""Tests for the local Twilio and OpenAI Realtime simulators."""
