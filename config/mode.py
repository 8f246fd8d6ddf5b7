"""Which settings profile is loading, and the development values only it may use.

`config.settings` is production and reads `DEVELOPMENT` as False unless
`config.dev_settings` set it first. The values below are published in the
repository: production refuses every one of them.
"""

DEVELOPMENT = False

DEVELOPMENT_SECRET_KEY = "insecure-development-key-never-use-in-production"
# The stand-ins sign webhooks and streams with whatever token the server has.
DEVELOPMENT_TWILIO_AUTH_TOKEN = "dev-auth-token"
# The Realtime stand-in accepts any key; the real service refuses this one.
DEVELOPMENT_OPENAI_API_KEY = "sk-development-simulator-only"
