"""LLM access: an OpenAI-compatible chat model with Deepseek's thinking-mode rules, and usage accounting."""
