"""Where the platform's WebSockets are mounted (`calls.routing`), for those who name them."""

#: Where Twilio opens the media stream (the TwiML names it under PUBLIC_BASE_URL).
MEDIA_STREAM_PATH = "twilio/media-stream/"
#: The staff live view page's socket.
LIVE_VIEW_PATH = "callbridge/live/ws/"
