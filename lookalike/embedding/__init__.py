"""Learned image embeddings: EfficientNet-Lite0 features run by onnxruntime.

Decode a picture once (``lookalike.hashing.decode_image``), hash it and embed it:

    from lookalike.embedding.embedder import shared_embedder
    embedder = shared_embedder(settings)        # None when LOOKALIKE_EMBEDDINGS=0
    vector = embedder.embed(image)              # (1280,) float32, unit length
    vectors = embedder.embed_many(images)       # (n, 1280)
    embedder.version                            # store it with the vectors

Modules: ``weights`` reads the torch weights without torch, ``architecture`` folds them into
a list of convolutions, ``onnx_build`` writes the ONNX graph, ``model`` names the model and
installs it, ``preprocess`` fits a picture into the model's square, ``embedder`` runs it.
Nothing is imported here, so naming an error (``model.EmbeddingError``) stays cheap: ``onnx``
is imported only to convert, ``onnxruntime`` only to run.
"""
