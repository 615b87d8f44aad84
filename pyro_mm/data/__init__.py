"""Offline multimodal data sets built from real digits, photographs and fonts."""
