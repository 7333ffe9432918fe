"""gnnrl.data"""
