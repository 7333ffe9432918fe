"""gnnrl.registry"""
