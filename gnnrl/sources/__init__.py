"""gnnrl.sources"""
