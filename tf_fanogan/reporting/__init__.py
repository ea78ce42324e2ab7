"""What people look at: plots and picture grids, the HTML report, and the visual Turing test.
"""
