"""The LLM arm of the small-model-vs-LLM study: a zero-shot classifier behind any OpenAI-compatible
chat-completions API (hosted, or a local llama.cpp / vLLM server), run on the same splits as Model A
and Model B by `careeredge-cloud compare-llm`."""
