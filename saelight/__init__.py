"""saelight: sparse autoencoders for audio foundation models."""
