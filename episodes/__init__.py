"""Episode collections on `datasets`: schema, writer, recorder, generation, captions, text corpus."""
