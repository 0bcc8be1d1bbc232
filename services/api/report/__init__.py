"""An HTML report a person can open: what was collected, how the crawl went, the graph's
measures, its degree histogram, a neighbourhood drawn with thumbnails, near-duplicate groups,
and the audit of the catalogue's similar lists by the learned embeddings (the least supported
edges and the strongest unlisted lookalikes, thumbnails side by side).

By file: ``write.py`` reads the graph, Redis and the thumbnail cache, draws the pictures and
writes the files; ``view.py`` turns what was read into the page's content (pure functions,
plain data); ``render.py`` puts that into the Jinja2 templates of ``templates/`` (the page,
its shared parts and its style sheet), escaping every value.
"""
