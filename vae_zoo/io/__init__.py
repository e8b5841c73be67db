"""Models on disk: zoo folders (``saving``), the pretrained index (``pretrained``), SavedModels (``export``)."""
