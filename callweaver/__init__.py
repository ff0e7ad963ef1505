"""callweaver: real-time voice agents for phone calls and the browser.

Packages, in import order (each imports only those before it):
``frames`` -> ``runtime`` -> ``processors`` -> ``pipelines`` -> ``transports`` -> ``cli``.
"""

__version__ = "0.1.0"
