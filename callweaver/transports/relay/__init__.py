"""Twilio ConversationRelay: Twilio does speech recognition and synthesis; the call's graph
starts at the caller's transcript and ends at the bot's reply text."""
