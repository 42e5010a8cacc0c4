"""Content ingestion: pure domain logic (normalize, genres, resolution, merge, availability,
quality) and the sample catalog generator. No I/O here; agents call these functions."""
