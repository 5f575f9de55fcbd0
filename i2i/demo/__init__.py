"""Try a model in a browser: ``i2i demo`` serves a Gradio page (``page``) for any model, with
examples cut from its sample grid (``examples``); ``i2i space`` publishes that page as a Hugging
Face Space (``space``). The page needs ``pip install "i2i[demo]"``; writing a Space does not.
"""
