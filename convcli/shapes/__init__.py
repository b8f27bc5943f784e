"""The shape calculator behind ``convcli shape``: output shapes with their formulas
(:mod:`~convcli.shapes.calculator`) and chains of layers (:mod:`~convcli.shapes.layers`),
validated by the library's own geometry.
"""
