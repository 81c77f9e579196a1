"""The LangGraph Agent Server API on the REST listener, for the official SDKs and their front ends."""
