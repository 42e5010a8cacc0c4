"""Discovery, natural-language search: pure domain logic (intent parsing by rules and the LLM
reply reader, filters, rank fusion, facets). No I/O here; the agent calls these functions."""
